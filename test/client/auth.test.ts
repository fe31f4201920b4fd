import { authSuite } from './auth-suite.js';
import { startInProcessSynod } from './targets.js';

authSuite('Synod (in process)', startInProcessSynod);
