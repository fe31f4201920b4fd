import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { findSocketOwner, parseProcNetTcp } from './socket-owner.js';

/** A /proc/net/tcp row: the fields the kernel prints after the addresses are fixed filler. */
function row(slot: number, local: string, remote: string, state: string, inode: number): string {
  const filler = '00000000:00000000 00:00000000 00000000  1000        0';
  return `   ${slot}: ${local} ${remote} ${state} ${filler} ${inode} 1 0`;
}

const procNetTcp = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout ' +
    'inode',
  row(0, '0100007F:0CEA', '00000000:0000', '0A', 4242),
  row(1, '0100007F:D431', '0100007F:0CEA', '01', 777),
  row(2, '0100007F:D432', '0100007F:0CEA', '06', 0),
  '',
].join('\n');

const procNetTcp6 = [
  '  sl  local_address                         remote_address                        st tx_queue ' +
    'rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:0CEA 01 ' +
    '00000000:00000000 00:00000000 00000000  1000        0 9001 1 0',
].join('\n');

describe('parseProcNetTcp', () => {
  it('reads ports and inodes from tcp rows, keeping TIME_WAIT rows with inode 0', () => {
    expect(parseProcNetTcp(procNetTcp)).toEqual([
      { localPort: 3306, remotePort: 0, inode: 4242 },
      { localPort: 54321, remotePort: 3306, inode: 777 },
      { localPort: 54322, remotePort: 3306, inode: 0 },
    ]);
  });

  it('reads IPv4-mapped tcp6 rows', () => {
    expect(parseProcNetTcp(procNetTcp6)).toEqual([
      { localPort: 40000, remotePort: 3306, inode: 9001 },
    ]);
  });
});

describe('findSocketOwner', () => {
  it('finds the process holding the dialing socket, and no one for a stranger pid', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const serverPort = (server.address() as AddressInfo).port;
    const accepted = once(server, 'connection');
    const client = connect(serverPort, '127.0.0.1');
    await once(client, 'connect');
    await accepted;
    const ports = { localPort: client.localPort!, remotePort: serverPort };
    try {
      const owner = await findSocketOwner(ports, [
        { name: 'parent', pid: process.ppid },
        { name: 'self', pid: process.pid },
      ]);
      expect(owner).toBe('self');
      expect(await findSocketOwner(ports, [{ name: 'parent', pid: process.ppid }])).toBeNull();
    } finally {
      client.destroy();
      server.close();
    }
  });
});
