// The SDK with auth on, against real etcd (the oracle) and Synod processes.
import { authSuite } from '../client/auth-suite.js';
import { startProcessTarget } from '../client/targets.js';

authSuite('real etcd', () => startProcessTarget('etcd'));
authSuite('Synod (process)', () => startProcessTarget('synod'));
