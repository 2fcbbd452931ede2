// QAPI's own error texts (qapi/qmp/qerror.h and the QAPI input visitor), in current QEMU's
// wording. One definition each, below everything that reports them: the QMP dispatcher's
// argument checks and the migration options' checks say the same thing the same way.

export const QERR = {
  /** QERR_MIGRATION_ACTIVE */
  migrationActive: "There's a migration process in progress",
  /** QERR_INVALID_PARAMETER_VALUE */
  invalidParameterValue: (name: string, expects: string) => `Parameter '${name}' expects ${expects}`,
  /** QERR_INVALID_PARAMETER_TYPE */
  invalidParameterType: (name: string, expected: string) => `Invalid parameter type for '${name}', expected: ${expected}`,
  /** QERR_MISSING_PARAMETER */
  missingParameter: (name: string) => `Parameter '${name}' is missing`,
  /** The input visitor, for a member the type does not have. */
  unexpectedParameter: (name: string) => `Parameter '${name}' is unexpected`,
  /** The input visitor, for an enum member not in the enum. */
  enumValue: (name: string, value: string) => `Parameter '${name}' does not accept value '${value}'`,
  /** qapi_enum_parse(), as HMP uses it. */
  enumParse: (value: string) => `invalid parameter value: ${value}`,
} as const;
