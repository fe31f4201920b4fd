// The SDK suite against real etcd (the oracle) and Synod, each a process started with etcd's flags.
import { clientSuite } from '../client/client-suite.js';
import { startProcessTarget } from '../client/targets.js';

clientSuite('real etcd', () => startProcessTarget('etcd'));
clientSuite('Synod (process)', () => startProcessTarget('synod'));
