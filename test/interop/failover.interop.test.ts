// The SDK across a leader kill, on three-member clusters of real etcd and of Synod.
import { startClusterTarget } from '../client/cluster-target.js';
import { failoverSuite } from '../client/failover-suite.js';

failoverSuite('real etcd (3 members)', () => startClusterTarget('etcd'));
failoverSuite('Synod (3 members)', () => startClusterTarget('synod'));
