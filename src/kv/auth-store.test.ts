import { describe, expect, it } from 'vitest';
import { isSynodError, type ErrorCode } from '../base/index.js';
import type { KeyPermission } from './auth-permissions.js';
import { AuthStore, type AuthChange } from './auth-store.js';
import { utf8 } from './bytes.js';
import { MemoryBackend } from './memory-backend.js';

/** Applies each change to `store` and commits its writes to `backend`; returns the codes thrown. */
function applyAll(store: AuthStore, backend: MemoryBackend, changes: AuthChange[]): (ErrorCode | null)[] {
  return changes.map((change) => {
    try {
      backend.commit(store.apply(change));
      return null;
    } catch (error) {
      if (!isSynodError(error)) throw error;
      return error.code;
    }
  });
}

const readPrefix = (key: string): KeyPermission => ({ permType: 'READ', key: utf8(key), rangeEnd: utf8(`${key}\uffff`) });

describe('auth store', () => {
  it('keeps users, roles and permissions across a reload, with a revision per change', () => {
    const backend = new MemoryBackend();
    const store = AuthStore.load(backend);
    expect(applyAll(store, backend, [
      { action: 'userAdd', name: 'root', passwordHash: 'h0' },
      { action: 'userGrantRole', user: 'root', role: 'root' },
      { action: 'roleAdd', name: 'reader' },
      { action: 'roleGrantPermission', name: 'reader', permission: readPrefix('app/') },
      { action: 'userAdd', name: 'alice', passwordHash: 'h1' },
      { action: 'userGrantRole', user: 'alice', role: 'reader' },
      { action: 'enable', tokenKey: 'a2V5' },
    ])).toEqual([null, null, null, null, null, null, null]);
    const reloaded = AuthStore.load(backend);
    expect(reloaded.enabled).toBe(true);
    expect(reloaded.revision).toBe(7);
    expect(reloaded.user('alice')).toEqual({ name: 'alice', passwordHash: 'h1', roles: ['reader'] });
    expect(reloaded.permissionsOf('alice')).toEqual([readPrefix('app/')]);
    expect(reloaded.isRoot('root')).toBe(true);
    expect(reloaded.isRoot('alice')).toBe(false);
    expect(reloaded.tokenKey).toBe('a2V5');
  });

  it('answers etcd\'s errors and changes nothing when a change does not fit', () => {
    const backend = new MemoryBackend();
    const store = AuthStore.load(backend);
    expect(applyAll(store, backend, [
      { action: 'enable' },
      { action: 'userAdd', name: 'root', passwordHash: 'h' },
      { action: 'enable' },
      { action: 'userAdd', name: 'root', passwordHash: 'h' },
      { action: 'userAdd', name: '', passwordHash: 'h' },
      { action: 'roleAdd', name: '' },
      { action: 'userGrantRole', user: 'root', role: 'nope' },
      { action: 'userGrantRole', user: 'ghost', role: 'root' },
      { action: 'userRevokeRole', name: 'root', role: 'reader' },
      { action: 'roleRevokePermission', role: 'nope', key: utf8('a'), rangeEnd: new Uint8Array() },
    ])).toEqual([
      'SYNOD_AUTH_ROOT_USER_MISSING', null, 'SYNOD_AUTH_ROOT_ROLE_MISSING', 'SYNOD_AUTH_USER_EXISTS',
      'SYNOD_AUTH_USER_EMPTY', 'SYNOD_AUTH_ROLE_EMPTY', 'SYNOD_AUTH_ROLE_NOT_FOUND',
      'SYNOD_AUTH_USER_NOT_FOUND', 'SYNOD_AUTH_ROLE_NOT_GRANTED', 'SYNOD_AUTH_ROLE_NOT_FOUND',
    ]);
    expect(store.revision).toBe(1);
    expect(AuthStore.load(backend).users()).toEqual([{ name: 'root', passwordHash: 'h', roles: [] }]);
  });

  it('protects root while auth is on, and a deleted role leaves every user', () => {
    const backend = new MemoryBackend();
    const store = AuthStore.load(backend);
    expect(applyAll(store, backend, [
      { action: 'userAdd', name: 'root', passwordHash: 'h' },
      { action: 'userGrantRole', user: 'root', role: 'root' },
      { action: 'roleAdd', name: 'ops' },
      { action: 'userGrantRole', user: 'root', role: 'ops' },
      { action: 'enable' },
      { action: 'userDelete', name: 'root' },
      { action: 'userRevokeRole', name: 'root', role: 'root' },
      { action: 'roleDelete', role: 'ops' },
      { action: 'disable' },
      { action: 'userRevokeRole', name: 'root', role: 'root' },
    ])).toEqual([null, null, null, null, null, 'SYNOD_AUTH_INVALID_MANAGEMENT', 'SYNOD_AUTH_INVALID_MANAGEMENT', null, null, null]);
    expect(AuthStore.load(backend).user('root')?.roles).toEqual([]);
  });

  it('replaces a permission on the same key and revokes it exactly', () => {
    const backend = new MemoryBackend();
    const store = AuthStore.load(backend);
    const key = utf8('k');
    expect(applyAll(store, backend, [
      { action: 'roleAdd', name: 'r' },
      { action: 'roleGrantPermission', name: 'r', permission: { permType: 'READ', key, rangeEnd: new Uint8Array() } },
      { action: 'roleGrantPermission', name: 'r', permission: { permType: 'READWRITE', key, rangeEnd: new Uint8Array() } },
      { action: 'roleRevokePermission', role: 'r', key, rangeEnd: utf8('z') },
      { action: 'roleRevokePermission', role: 'r', key, rangeEnd: new Uint8Array() },
    ])).toEqual([null, null, null, 'SYNOD_AUTH_PERMISSION_NOT_GRANTED', null]);
    expect(AuthStore.load(backend).role('r')?.permissions).toEqual([]);
  });
});

describe('auth commands through the state machine', () => {
  it('round-trip the log codec and apply, surviving a snapshot', async () => {
    const { KvStateMachine } = await import('./state-machine.js');
    const { decodeCommand, encodeCommand } = await import('./command.js');
    const grant = {
      type: 'auth' as const,
      change: { action: 'roleGrantPermission' as const, name: 'r', permission: { permType: 'READWRITE' as const, key: Uint8Array.of(0, 255), rangeEnd: Uint8Array.of(0) } },
    };
    expect(decodeCommand(encodeCommand(grant))).toEqual(grant);
    const machine = KvStateMachine.open();
    expect(machine.apply({ type: 'auth', change: { action: 'roleAdd', name: 'r' } }).ok).toBe(true);
    const applied = machine.apply(grant);
    expect(applied.ok && applied.result.type === 'auth' && applied.result.response.authRevision).toBe(2);
    const restored = KvStateMachine.restore(machine.serialize());
    expect(restored.store.auth.role('r')?.permissions).toEqual([grant.change.permission]);
    const refused = restored.apply({ type: 'auth', change: { action: 'enable' } });
    expect(refused.ok ? null : refused.error.code).toBe('SYNOD_AUTH_ROOT_USER_MISSING');
  });
});
