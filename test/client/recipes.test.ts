import { coordinationRecipesSuite } from './recipes-suite.js';
import { startInProcessSynod } from './targets.js';

coordinationRecipesSuite('Synod (in process)', startInProcessSynod);
