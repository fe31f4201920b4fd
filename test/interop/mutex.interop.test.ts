// The Mutex recipe against real etcd (the oracle) and Synod, each a process with etcd's flags.
import { mutexSuite } from '../client/mutex-suite.js';
import { startProcessTarget } from '../client/targets.js';

mutexSuite('real etcd', () => startProcessTarget('etcd'));
mutexSuite('Synod (process)', () => startProcessTarget('synod'));
