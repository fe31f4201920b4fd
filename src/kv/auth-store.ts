/**
 * etcd's auth store as replicated state (server/auth/store.go): whether auth is enabled, its
 * revision (bumped by every change, so a check made against an older revision can be redone),
 * users with their password hashes and roles, and roles with their key permissions. Records live
 * in the `meta` bucket under `auth/`, so they travel in snapshots like the member table.
 *
 * Changes arrive from the log, already decided: a password is hashed by the member that proposes
 * the change (src/server), so neither the log nor a snapshot ever holds it. Applying a change
 * that does not fit is an expected outcome with etcd's error, identical on every replica. The
 * rules are etcd 3.4's: `root` may not be deleted nor lose the `root` role while auth is on;
 * granting the `root` role works even when no role of that name exists (clients' setup code
 * relies on it); enabling needs a `root` user holding the `root` role.
 */

import { SynodError } from '../base/index.js';
import type { Backend, BackendWrite } from './backend.js';
import { compareBytes, prefixEnd } from './bytes.js';
import type { KeyPermission, PermissionType } from './auth-permissions.js';

/** A user: name, password hash (null for a user added with no password) and granted roles. */
export interface AuthUser {
  readonly name: string;
  /** As the server's password hasher wrote it; never the password. */
  readonly passwordHash: string | null;
  /** Sorted, unique. */
  readonly roles: readonly string[];
}

/** A role and the key permissions it grants, sorted by key then range end. */
export interface AuthRole {
  readonly name: string;
  readonly permissions: readonly KeyPermission[];
}

/** A change to the auth store, as applied from the log. */
export type AuthChange =
  /** `tokenKey` (base64): the key every member signs and checks auth tokens with, new each time. */
  | { readonly action: 'enable'; readonly tokenKey?: string }
  | { readonly action: 'disable' }
  | { readonly action: 'userAdd'; readonly name: string; readonly passwordHash: string | null }
  | { readonly action: 'userDelete'; readonly name: string }
  | { readonly action: 'userChangePassword'; readonly name: string; readonly passwordHash: string | null }
  | { readonly action: 'userGrantRole'; readonly user: string; readonly role: string }
  | { readonly action: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly action: 'roleAdd'; readonly name: string }
  | { readonly action: 'roleDelete'; readonly role: string }
  | { readonly action: 'roleGrantPermission'; readonly name: string; readonly permission: KeyPermission }
  | {
    readonly action: 'roleRevokePermission'; readonly role: string;
    readonly key: Uint8Array; readonly rangeEnd: Uint8Array;
  };

/** The name of the all-powerful user and role. */
export const rootName = 'root';
/** Longest user or role name accepted. */
export const authNameBytesMax = 256;
/** Most users, roles, and permissions per role (bounded: every member holds them in memory). */
export const authUsersMax = 10_000;
export const authRolesMax = 10_000;
export const authPermissionsPerRoleMax = 1_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const keys = Object.freeze({
  enabled: encoder.encode('auth/enabled'),
  revision: encoder.encode('auth/revision'),
  tokenKey: encoder.encode('auth/token-key'),
  user: encoder.encode('auth/user/'),
  role: encoder.encode('auth/role/'),
});

/** The auth store, mirrored in memory from the meta bucket. */
export class AuthStore {
  #enabled = false;
  #revision = 0;
  #tokenKey: string | null = null;
  readonly #users = new Map<string, AuthUser>();
  readonly #roles = new Map<string, AuthRole>();

  /** Loads the store from `backend`; a malformed record is SYNOD_STORAGE_CORRUPT. */
  static load(backend: Backend): AuthStore {
    const store = new AuthStore();
    store.#enabled = backend.get('meta', keys.enabled)?.[0] === 1;
    const revision = backend.get('meta', keys.revision);
    store.#revision = revision === undefined ? 0 : Number(new DataView(revision.buffer, revision.byteOffset, 8).getBigUint64(0));
    const tokenKey = backend.get('meta', keys.tokenKey);
    store.#tokenKey = tokenKey === undefined ? null : decoder.decode(tokenKey);
    for (const entry of backend.scan('meta', { start: keys.user, end: prefixEnd(keys.user) })) {
      const user = parseRecord<AuthUser>(entry.value, 'user');
      store.#users.set(user.name, user);
    }
    for (const entry of backend.scan('meta', { start: keys.role, end: prefixEnd(keys.role) })) {
      const role = decodeRole(parseRecord<StoredRole>(entry.value, 'role'));
      store.#roles.set(role.name, role);
    }
    return store;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Bumped by every applied change; 0 for a store never changed. */
  get revision(): number {
    return this.#revision;
  }

  /** The key auth tokens are signed with (base64), set by the last enable; null before. */
  get tokenKey(): string | null {
    return this.#tokenKey;
  }

  user(name: string): AuthUser | undefined {
    return this.#users.get(name);
  }

  role(name: string): AuthRole | undefined {
    return this.#roles.get(name);
  }

  /** Every user, by name. */
  users(): AuthUser[] {
    return [...this.#users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every role, by name. */
  roles(): AuthRole[] {
    return [...this.#roles.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Whether `name` holds the root role (and may therefore do anything). */
  isRoot(name: string): boolean {
    return this.#users.get(name)?.roles.includes(rootName) ?? false;
  }

  /** The key permissions of every role `name` holds (empty for an unknown user). */
  permissionsOf(name: string): KeyPermission[] {
    const user = this.#users.get(name);
    if (user === undefined) return [];
    return user.roles.flatMap((role) => this.#roles.get(role)?.permissions ?? []);
  }

  /**
   * Applies `change` and returns the backend writes recording it (the revision included). Throws
   * etcd's errors (SYNOD_AUTH_*) without changing anything.
   */
  apply(change: AuthChange): BackendWrite[] {
    const writes = this.#writesOf(change);
    this.#revision += 1;
    const revision = new Uint8Array(8);
    new DataView(revision.buffer).setBigUint64(0, BigInt(this.#revision));
    writes.push({ bucket: 'meta', key: keys.revision, value: revision });
    return writes;
  }

  #writesOf(change: AuthChange): BackendWrite[] {
    switch (change.action) {
      case 'enable': {
        const root = this.#users.get(rootName);
        if (root === undefined) throw new SynodError('SYNOD_AUTH_ROOT_USER_MISSING');
        if (!root.roles.includes(rootName)) throw new SynodError('SYNOD_AUTH_ROOT_ROLE_MISSING');
        this.#enabled = true;
        const writes: BackendWrite[] = [{ bucket: 'meta', key: keys.enabled, value: Uint8Array.of(1) }];
        if (typeof change.tokenKey === 'string' && change.tokenKey.length > 0) {
          this.#tokenKey = change.tokenKey;
          writes.push({ bucket: 'meta', key: keys.tokenKey, value: encoder.encode(change.tokenKey) });
        }
        return writes;
      }
      case 'disable':
        this.#enabled = false;
        return [{ bucket: 'meta', key: keys.enabled, value: Uint8Array.of(0) }];
      case 'userAdd': {
        checkName(change.name, 'SYNOD_AUTH_USER_EMPTY');
        if (this.#users.has(change.name)) throw new SynodError('SYNOD_AUTH_USER_EXISTS');
        if (this.#users.size >= authUsersMax) throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', 'etcdserver: too many users');
        return this.#putUser({ name: change.name, passwordHash: change.passwordHash, roles: [] });
      }
      case 'userDelete': {
        if (this.#enabled && change.name === rootName) throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT');
        this.#existingUser(change.name);
        this.#users.delete(change.name);
        return [{ bucket: 'meta', key: recordKey(keys.user, change.name) }];
      }
      case 'userChangePassword':
        return this.#putUser({ ...this.#existingUser(change.name), passwordHash: change.passwordHash });
      case 'userGrantRole': {
        const user = this.#existingUser(change.user);
        if (change.role !== rootName && !this.#roles.has(change.role)) throw new SynodError('SYNOD_AUTH_ROLE_NOT_FOUND');
        if (user.roles.includes(change.role)) return [];
        return this.#putUser({ ...user, roles: [...user.roles, change.role].sort() });
      }
      case 'userRevokeRole': {
        if (this.#enabled && change.name === rootName && change.role === rootName) {
          throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT');
        }
        const user = this.#existingUser(change.name);
        if (!user.roles.includes(change.role)) throw new SynodError('SYNOD_AUTH_ROLE_NOT_GRANTED');
        return this.#putUser({ ...user, roles: user.roles.filter((role) => role !== change.role) });
      }
      case 'roleAdd': {
        checkName(change.name, 'SYNOD_AUTH_ROLE_EMPTY');
        if (this.#roles.has(change.name)) throw new SynodError('SYNOD_AUTH_ROLE_EXISTS');
        if (this.#roles.size >= authRolesMax) throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', 'etcdserver: too many roles');
        return this.#putRole({ name: change.name, permissions: [] });
      }
      case 'roleDelete': return this.#deleteRole(change.role);
      case 'roleGrantPermission': return this.#grantPermission(change.name, change.permission);
      case 'roleRevokePermission': {
        const role = this.#existingRole(change.role);
        const kept = role.permissions.filter((p) => !samePermissionKey(p, change));
        if (kept.length === role.permissions.length) throw new SynodError('SYNOD_AUTH_PERMISSION_NOT_GRANTED');
        return this.#putRole({ ...role, permissions: kept });
      }
    }
  }

  #deleteRole(name: string): BackendWrite[] {
    if (this.#enabled && name === rootName) throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT');
    this.#existingRole(name);
    this.#roles.delete(name);
    const writes: BackendWrite[] = [{ bucket: 'meta', key: recordKey(keys.role, name) }];
    // etcd revokes a deleted role from every user that held it.
    for (const user of [...this.#users.values()]) {
      if (user.roles.includes(name)) writes.push(...this.#putUser({ ...user, roles: user.roles.filter((r) => r !== name) }));
    }
    return writes;
  }

  #grantPermission(name: string, permission: KeyPermission): BackendWrite[] {
    const role = this.#existingRole(name);
    const others = role.permissions.filter((p) => !samePermissionKey(p, permission));
    if (others.length >= authPermissionsPerRoleMax) {
      throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', 'etcdserver: too many permissions in the role');
    }
    const permissions = [...others, permission].sort((a, b) => compareBytes(a.key, b.key) || compareBytes(a.rangeEnd, b.rangeEnd));
    return this.#putRole({ ...role, permissions });
  }

  #existingUser(name: string): AuthUser {
    const user = this.#users.get(name);
    if (user === undefined) throw new SynodError('SYNOD_AUTH_USER_NOT_FOUND');
    return user;
  }

  #existingRole(name: string): AuthRole {
    const role = this.#roles.get(name);
    if (role === undefined) throw new SynodError('SYNOD_AUTH_ROLE_NOT_FOUND');
    return role;
  }

  #putUser(user: AuthUser): BackendWrite[] {
    this.#users.set(user.name, user);
    return [{ bucket: 'meta', key: recordKey(keys.user, user.name), value: encoder.encode(JSON.stringify(user)) }];
  }

  #putRole(role: AuthRole): BackendWrite[] {
    this.#roles.set(role.name, role);
    return [{ bucket: 'meta', key: recordKey(keys.role, role.name), value: encoder.encode(JSON.stringify(encodeRole(role))) }];
  }
}

/** A role as stored: byte strings as base64. */
interface StoredRole {
  readonly name: string;
  readonly permissions: readonly { permType: PermissionType; key: string; rangeEnd: string }[];
}

function encodeRole(role: AuthRole): StoredRole {
  return {
    name: role.name,
    permissions: role.permissions.map((p) => ({
      permType: p.permType, key: Buffer.from(p.key).toString('base64'), rangeEnd: Buffer.from(p.rangeEnd).toString('base64'),
    })),
  };
}

function decodeRole(stored: StoredRole): AuthRole {
  return {
    name: stored.name,
    permissions: stored.permissions.map((p) => ({
      permType: p.permType, key: new Uint8Array(Buffer.from(p.key, 'base64')),
      rangeEnd: new Uint8Array(Buffer.from(p.rangeEnd, 'base64')),
    })),
  };
}

function samePermissionKey(a: { key: Uint8Array; rangeEnd: Uint8Array }, b: { key: Uint8Array; rangeEnd: Uint8Array }): boolean {
  return compareBytes(a.key, b.key) === 0 && compareBytes(a.rangeEnd, b.rangeEnd) === 0;
}

function checkName(name: string, emptyCode: 'SYNOD_AUTH_USER_EMPTY' | 'SYNOD_AUTH_ROLE_EMPTY'): void {
  if (typeof name !== 'string' || name.length === 0) throw new SynodError(emptyCode);
  if (encoder.encode(name).length > authNameBytesMax) {
    throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', `etcdserver: names are at most ${authNameBytesMax} bytes`);
  }
}

function recordKey(prefix: Uint8Array, name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  const key = new Uint8Array(prefix.length + nameBytes.length);
  key.set(prefix);
  key.set(nameBytes, prefix.length);
  return key;
}

function parseRecord<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', `kv: malformed auth ${what} record`);
  }
}

/** The bytes of a change in a log entry: JSON, byte strings as base64. */
export function encodeAuthChange(change: AuthChange): Uint8Array {
  return encoder.encode(JSON.stringify(change, (_key, value: unknown) => (
    value instanceof Uint8Array ? { $b64: Buffer.from(value).toString('base64') } : value
  )));
}

/** Parses `encodeAuthChange`'s bytes; its fields are checked when it is applied. */
export function decodeAuthChange(bytes: Uint8Array): AuthChange {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes), (_key, field: unknown) => {
      const tagged = field as { $b64?: unknown } | null;
      return typeof tagged === 'object' && tagged !== null && typeof tagged.$b64 === 'string'
        ? new Uint8Array(Buffer.from(tagged.$b64, 'base64')) : field;
    });
  } catch {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', 'kv command: auth change is not JSON');
  }
  const action = (value as { action?: unknown } | null)?.action;
  if (typeof action !== 'string' || !authActions.has(action)) {
    throw new SynodError('SYNOD_STORAGE_CORRUPT', 'kv command: unknown auth change');
  }
  return value as AuthChange;
}

const authActions = new Set([
  'enable', 'disable', 'userAdd', 'userDelete', 'userChangePassword', 'userGrantRole', 'userRevokeRole',
  'roleAdd', 'roleDelete', 'roleGrantPermission', 'roleRevokePermission',
]);
