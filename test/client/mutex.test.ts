import { mutexSuite } from './mutex-suite.js';
import { startInProcessSynod } from './targets.js';

mutexSuite('Synod (in process)', startInProcessSynod);
