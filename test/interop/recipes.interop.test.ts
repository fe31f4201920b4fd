// The coordination recipes against real etcd (the oracle) and Synod, each a process with etcd's flags.
import { coordinationRecipesSuite } from '../client/recipes-suite.js';
import { startProcessTarget } from '../client/targets.js';

coordinationRecipesSuite('real etcd', () => startProcessTarget('etcd'));
coordinationRecipesSuite('Synod (process)', () => startProcessTarget('synod'));
