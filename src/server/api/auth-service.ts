/**
 * etcdserverpb.Auth (etcd server/etcdserver/api/v3rpc/auth.go, v3_server.go): users, roles,
 * permissions, enable/disable, status and Authenticate, over the replicated auth store
 * (src/kv/auth-store.ts). Changes are proposed through Raft; passwords are hashed here first
 * (src/server/auth/password.ts), so only hashes reach the log. Who may call what is decided by
 * the auth interceptor (src/server/auth/auth-interceptor.ts), not here.
 *
 * Authenticate waits for a ReadIndex, so the auth store it reads is at least as new as the
 * cluster's when the call arrived (etcd's Authenticate goes through Raft for the same reason: a
 * lagging member must neither accept an old password nor issue a JWT already stale elsewhere),
 * checks the password on this member and answers a token from the member's provider
 * (src/server/auth/token-provider.ts: signed or JWT, per `--auth-token`). Failed attempts for a
 * user are slowed down: each consecutive failure doubles a delay before the answer (from
 * `failureDelayMsMin` to `failureDelayMsMax`), which makes guessing slow without locking the user
 * out; the per-user counters are bounded.
 */

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { SynodError } from '../../base/index.js';
import type { AuthChange, KeyPermission, PermissionType } from '../../kv/index.js';
import { hashPassword, PasswordVerifier, scryptCostDefault } from '../auth/password.js';
import type { TokenProvider } from '../auth/token-provider.js';
import { newTokenKey, SignedTokenProvider } from '../auth/tokens.js';
import type { RaftNode } from '../node/raft-node.js';
import { rethrowLater, unaryHandler, type FatalHandler } from './unary.js';

/** The first delay after a failed Authenticate, doubled per consecutive failure, in ms. */
export const failureDelayMsMin = 100;
/**
 * The longest delay before answering a failed Authenticate, in ms: under the 2 s dial timeout of
 * etcd's Go client (etcdctl), so a wrong password reads as "authentication failed", never as a
 * server that did not answer.
 */
export const failureDelayMsMax = 1_000;
/** Users whose failures are remembered at once (oldest forgotten first). */
export const failureCountsMax = 10_000;

/** Options of `createAuthService`. */
export interface AuthServiceOptions {
  readonly node: RaftNode;
  readonly clusterId: bigint;
  readonly memberId: bigint;
  /** scrypt's cost for new hashes (tests lower it). */
  readonly passwordCost?: { readonly log2N: number; readonly r: number; readonly p: number };
  /** Issues the tokens Authenticate answers (Synod's signed tokens by default). */
  readonly tokens?: TokenProvider;
  readonly onFatal?: FatalHandler;
  /** Wall-clock ms (token expiry). */
  readonly nowMs?: () => number;
}

const permTypes: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return '';
}

function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? new Uint8Array(value) : new Uint8Array(0);
}

/** The Auth implementation for `server.addService(proto.services.Auth, …)`. */
export function createAuthService(options: AuthServiceOptions): UntypedServiceImplementation {
  const { node } = options;
  const onFatal = options.onFatal ?? rethrowLater;
  const cost = options.passwordCost ?? scryptCostDefault;
  const nowMs = options.nowMs ?? (() => Date.now());
  const tokens = options.tokens ?? new SignedTokenProvider();
  const verifier = new PasswordVerifier();
  const failures = new Map<string, number>();
  const store = () => node.stateMachine.store.auth;
  const header = () => ({
    cluster_id: options.clusterId.toString(), member_id: options.memberId.toString(),
    revision: String(node.stateMachine.store.currentRevision), raft_term: node.term.toString(),
  });
  const propose = async (change: AuthChange): Promise<object> => {
    const result = await node.propose({ type: 'auth', change });
    if (!result.ok) throw result.error;
    return { header: header() };
  };
  const hashOf = async (request: { password?: unknown; options?: { no_password?: boolean } | null }) =>
    (request.options?.no_password === true ? null : hashPassword(text(request.password), cost));
  const unary = <Request>(handle: (request: Request) => Promise<object>) => unaryHandler<Request>(onFatal, handle);

  const authenticate = async (request: { name?: unknown; password?: unknown }): Promise<object> => {
    await node.linearizableRead();
    const auth = store();
    if (!auth.enabled) throw new SynodError('SYNOD_AUTH_NOT_ENABLED');
    // Refused before the password check, which would be spent for nothing.
    if (!tokens.canIssue) throw new SynodError('SYNOD_AUTH_VERIFY_ONLY');
    const name = text(request.name);
    const user = auth.user(name);
    const ok = user !== undefined && user.passwordHash !== null
      && await verifier.verify(name, text(request.password), user.passwordHash);
    if (!ok) {
      const count = (failures.get(name) ?? 0) + 1;
      failures.delete(name);
      failures.set(name, count);
      if (failures.size > failureCountsMax) failures.delete(failures.keys().next().value!);
      await new Promise((resolve) => setTimeout(resolve, Math.min(failureDelayMsMax, failureDelayMsMin * 2 ** (count - 1))));
      throw new SynodError('SYNOD_AUTH_FAILED');
    }
    failures.delete(name);
    // The password check awaited: a token issued at a revision after a change of this user's
    // password (or its deletion) would pass a JWT's revision check, so look again.
    const current = store();
    const checked = current.user(name);
    if (checked === undefined || checked.passwordHash !== user.passwordHash) {
      throw new SynodError('SYNOD_AUTH_FAILED');
    }
    const token = tokens.issue({ store: current, user: checked, nowMs: nowMs() });
    return { header: header(), token };
  };

  return {
    AuthEnable: unary(async () => propose({ action: 'enable', tokenKey: newTokenKey() })),
    AuthDisable: unary(async () => propose({ action: 'disable' })),
    AuthStatus: unary(async () => ({ header: header(), enabled: store().enabled, authRevision: String(store().revision) })),
    Authenticate: unary(authenticate),
    UserAdd: unary<{ name?: unknown; password?: unknown; options?: { no_password?: boolean } | null }>(async (request) =>
      propose({ action: 'userAdd', name: text(request.name), passwordHash: await hashOf(request) })),
    UserGet: unary<{ name?: unknown }>(async (request) => {
      const user = store().user(text(request.name));
      if (user === undefined) throw new SynodError('SYNOD_AUTH_USER_NOT_FOUND');
      return { header: header(), roles: [...user.roles] };
    }),
    UserList: unary(async () => ({ header: header(), users: store().users().map((user) => user.name) })),
    UserDelete: unary<{ name?: unknown }>(async (request) => propose({ action: 'userDelete', name: text(request.name) })),
    UserChangePassword: unary<{ name?: unknown; password?: unknown }>(async (request) =>
      propose({ action: 'userChangePassword', name: text(request.name), passwordHash: await hashOf(request) })),
    UserGrantRole: unary<{ user?: unknown; role?: unknown }>(async (request) =>
      propose({ action: 'userGrantRole', user: text(request.user), role: text(request.role) })),
    UserRevokeRole: unary<{ name?: unknown; role?: unknown }>(async (request) =>
      propose({ action: 'userRevokeRole', name: text(request.name), role: text(request.role) })),
    RoleAdd: unary<{ name?: unknown }>(async (request) => propose({ action: 'roleAdd', name: text(request.name) })),
    RoleGet: unary<{ role?: unknown }>(async (request) => {
      const role = store().role(text(request.role));
      if (role === undefined) throw new SynodError('SYNOD_AUTH_ROLE_NOT_FOUND');
      return { header: header(), perm: role.permissions.map(wirePermission) };
    }),
    RoleList: unary(async () => ({ header: header(), roles: store().roles().map((role) => role.name) })),
    RoleDelete: unary<{ role?: unknown }>(async (request) => propose({ action: 'roleDelete', role: text(request.role) })),
    RoleGrantPermission: unary<{ name?: unknown; perm?: { permType?: unknown; key?: unknown; range_end?: unknown } | null }>(
      async (request) => propose({ action: 'roleGrantPermission', name: text(request.name), permission: permissionOf(request.perm) })),
    RoleRevokePermission: unary<{ role?: unknown; key?: unknown; range_end?: unknown }>(async (request) =>
      propose({ action: 'roleRevokePermission', role: text(request.role), key: bytes(request.key), rangeEnd: bytes(request.range_end) })),
  };
}

function permissionOf(perm: { permType?: unknown; key?: unknown; range_end?: unknown } | null | undefined): KeyPermission {
  if (perm === null || perm === undefined) throw new SynodError('SYNOD_AUTH_PERMISSION_NOT_GIVEN');
  const permType = typeof perm.permType === 'number' ? permTypes[perm.permType] : perm.permType;
  if (!permTypes.includes(permType as PermissionType)) {
    throw new SynodError('SYNOD_AUTH_INVALID_MANAGEMENT', 'etcdserver: unknown permission type');
  }
  return { permType: permType as PermissionType, key: bytes(perm.key), rangeEnd: bytes(perm.range_end) };
}

function wirePermission(permission: KeyPermission): object {
  return { permType: permission.permType, key: Buffer.from(permission.key), range_end: Buffer.from(permission.rangeEnd) };
}
