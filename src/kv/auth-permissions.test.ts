import { describe, expect, it } from 'vitest';
import { permitsRange, type KeyPermission, type PermissionType } from './auth-permissions.js';
import { utf8 } from './bytes.js';

const perm = (permType: PermissionType, key: string, rangeEnd = ''): KeyPermission =>
  ({ permType, key: utf8(key), rangeEnd: rangeEnd === '\0' ? Uint8Array.of(0) : utf8(rangeEnd) });
const ask = (permissions: KeyPermission[], key: string, rangeEnd: string, wanted: 'READ' | 'WRITE') =>
  permitsRange(permissions, { key: utf8(key), rangeEnd: rangeEnd === '\0' ? Uint8Array.of(0) : utf8(rangeEnd), wanted });

describe('permitsRange', () => {
  it('grants a single key only to itself, and by type', () => {
    const permissions = [perm('READ', 'a')];
    expect(ask(permissions, 'a', '', 'READ')).toBe(true);
    expect(ask(permissions, 'a', '', 'WRITE')).toBe(false);
    expect(ask(permissions, 'ab', '', 'READ')).toBe(false);
    expect(ask(permissions, 'a', 'b', 'READ')).toBe(false);
    expect(ask([perm('READWRITE', 'a')], 'a', '', 'WRITE')).toBe(true);
  });

  it('grants a range only when the union of grants covers all of it', () => {
    const permissions = [perm('READ', 'a', 'c'), perm('READ', 'c', 'e'), perm('WRITE', 'e', 'z')];
    expect(ask(permissions, 'a', 'e', 'READ')).toBe(true); // Adjacent grants merge.
    expect(ask(permissions, 'b', 'd', 'READ')).toBe(true);
    expect(ask(permissions, 'a', 'f', 'READ')).toBe(false); // [e, f) is WRITE only.
    expect(ask([perm('READ', 'a', 'c'), perm('READ', 'd', 'f')], 'a', 'e', 'READ')).toBe(false); // The gap [c, d).
    expect(ask(permissions, 'cc', '', 'READ')).toBe(true);
  });

  it('treats "\\0" as every key from the start on, on both sides', () => {
    expect(ask([perm('READ', 'k', '\0')], 'k', '\0', 'READ')).toBe(true);
    expect(ask([perm('READ', 'k', '\0')], 'z', '', 'READ')).toBe(true);
    expect(ask([perm('READ', 'k', 'zz')], 'k', '\0', 'READ')).toBe(false);
    expect(ask([perm('READ', '', '\0')], '', '\0', 'READ')).toBe(true);
  });

  it('grants no empty or inverted range, and nothing without grants', () => {
    expect(ask([perm('READ', '', '\0')], 'b', 'a', 'READ')).toBe(false);
    expect(ask([], 'a', '', 'READ')).toBe(false);
  });
});
