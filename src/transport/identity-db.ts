// The IndexedDB schema for this browser's WebRTC identity: its DTLS certificate, kept so the
// fingerprint (and the short authentication string shown from it) stays the same across tabs
// and reloads. The one DBSchema and its upgrades, keyed on oldVersion.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

export const IDENTITY_DB_NAME = 'tabmig-identity';
export const IDENTITY_DB_VERSION = 1;

export interface CertificateRecord {
  /** 'dtls' (one certificate per browser profile). */
  name: string;
  /** RTCCertificate is structured-cloneable: IndexedDB keeps the private key, unextractable. */
  certificate: RTCCertificate;
  created: number;
}

export interface IdentityDB extends DBSchema {
  certificates: { key: string; value: CertificateRecord };
}

export type IdentityDatabase = IDBPDatabase<IdentityDB>;

export function openIdentityDB(name = IDENTITY_DB_NAME): Promise<IdentityDatabase> {
  return openDB<IdentityDB>(name, IDENTITY_DB_VERSION, {
    upgrade(db, oldVersion) {
      switch (oldVersion) {
        case 0:
          db.createObjectStore('certificates', { keyPath: 'name' });
      }
    },
    blocking() {
      // a newer version upgrades in another tab: let it
    },
  });
}
