import { ok } from './helpers/assert.js';

describe('page isolation', () => {
  it('is cross-origin isolated, so SharedArrayBuffer works', () => {
    ok(crossOriginIsolated, 'crossOriginIsolated');
    ok(typeof SharedArrayBuffer === 'function', 'SharedArrayBuffer exists');
  });
});
