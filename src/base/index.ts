/** Synod's base layer: assertions, coded errors, seeded randomness, coverage marks, histograms. */
export { assert, unreachable, AssertionFailure } from './assert.js';
export { SynodError, errorCodes, isSynodError, type ErrorCode } from './errors.js';
export { SeededRandom, type Random } from './random.js';
export { mark, collectMarks } from './marks.js';
export { Histogram, exponentialBuckets, type HistogramSnapshot } from './histogram.js';
