/**
 * Which process owns the far end of a loopback TCP connection. Linux only: the kernel lists every
 * socket of the network namespace in /proc/net/tcp and /proc/net/tcp6 with its inode, and each
 * process's open sockets appear in /proc/<pid>/fd as links to `socket:[inode]`.
 *
 * A proxy that accepted a connection from 127.0.0.1:ephemeral looks for the socket whose local port
 * is that ephemeral port and whose remote port is the proxy's own port, then for the process
 * holding that inode. The owner's threads share its fd table, so the process's pid is enough; a
 * socket held only by a child process of the pid is not found.
 */

import { readFile, readdir, readlink } from 'node:fs/promises';
import { assert } from '../../../base/index.js';

/** One row of /proc/net/tcp or /proc/net/tcp6, reduced to what identification needs. */
export interface TcpSocketEntry {
  readonly localPort: number;
  readonly remotePort: number;
  /** The socket's inode; 0 for sockets no process holds (e.g. TIME_WAIT). */
  readonly inode: number;
}

/** The two ends of a connection, seen from the dialing socket. */
export interface SocketPorts {
  /** The dialer's own (ephemeral) port: the accepted socket's `remotePort`. */
  readonly localPort: number;
  /** The port the dialer connected to: the proxy's listening port. */
  readonly remotePort: number;
}

/** A process that may own the socket, by the name the caller wants back. */
export interface OwnerCandidate {
  readonly name: string;
  readonly pid: number;
}

const procNetTcpPaths = ['/proc/net/tcp', '/proc/net/tcp6'] as const;

/** The field of a /proc/net/tcp row holding the inode (after `sl`, addresses, state, queues…). */
const inodeFieldIndex = 9;

/** Parses the text of /proc/net/tcp or tcp6: a header line, then one socket per line. */
export function parseProcNetTcp(text: string): TcpSocketEntry[] {
  const entries: TcpSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length <= inodeFieldIndex) continue;
    const localPort = parseHexPort(fields[1]!);
    const remotePort = parseHexPort(fields[2]!);
    const inode = Number.parseInt(fields[inodeFieldIndex]!, 10);
    if (localPort === null || remotePort === null || !Number.isSafeInteger(inode)) continue;
    entries.push({ localPort, remotePort, inode });
  }
  return entries;
}

/** `0100007F:1F90` → 8080; IPv6 addresses hold colons only before the port in this format. */
function parseHexPort(address: string): number | null {
  const separator = address.lastIndexOf(':');
  if (separator < 0) return null;
  const port = Number.parseInt(address.slice(separator + 1), 16);
  return Number.isInteger(port) && port >= 0 && port <= 0xffff ? port : null;
}

/** The inode of the live socket with these ports, or null when the kernel lists none. */
export async function findSocketInode(ports: SocketPorts): Promise<number | null> {
  for (const path of procNetTcpPaths) {
    const text = await readFileOrNull(path);
    if (text === null) continue;
    const entry = parseProcNetTcp(text).find(
      (candidate) =>
        candidate.localPort === ports.localPort &&
        candidate.remotePort === ports.remotePort &&
        candidate.inode !== 0,
    );
    if (entry !== undefined) return entry.inode;
  }
  return null;
}

/** True when process `pid` has a descriptor open on socket `inode`; false if it is gone. */
export async function processHoldsSocket(pid: number, inode: number): Promise<boolean> {
  assert(Number.isSafeInteger(pid) && pid > 0, `invalid pid: ${pid}`);
  const directory = `/proc/${pid}/fd`;
  let descriptors: string[];
  try {
    descriptors = await readdir(directory);
  } catch {
    return false; // The process exited or is not ours to inspect: it does not hold the socket.
  }
  const wanted = `socket:[${inode}]`;
  const targets = await Promise.all(
    descriptors.map((fd) => readlink(`${directory}/${fd}`).catch(() => null)),
  );
  return targets.includes(wanted);
}

/**
 * The name of the candidate whose process holds the dialing socket, or null when none does (a
 * client that is not a member, or a socket already closed).
 */
export async function findSocketOwner(
  ports: SocketPorts,
  candidates: readonly OwnerCandidate[],
): Promise<string | null> {
  const inode = await findSocketInode(ports);
  if (inode === null) return null;
  for (const candidate of candidates) {
    if (await processHoldsSocket(candidate.pid, inode)) return candidate.name;
  }
  return null;
}

async function readFileOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null; // tcp6 is absent when IPv6 is disabled.
  }
}
