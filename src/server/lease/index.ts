/** The leader's lease clock and expiry (lease-keeper.ts), its time sources, and forwarding. */
export {
  LeaseKeeper, checkIntervalMsDefault, revokesInFlightMax, revokesPerSecondMaxDefault,
  type LeaseKeeperNode, type LeaseKeeperOptions,
} from './lease-keeper.js';
export {
  ManualClock, intervalCheckScheduler, monotonicClock, type CheckScheduler, type LeaseClock,
} from './clock.js';
export { serveForwardedLeaseRequests, type LeaseLeaderClient } from './leader-endpoint.js';
export { leaseLeaderOverPeers, serveLeaseRequestsToPeers } from './peer-forwarding.js';
