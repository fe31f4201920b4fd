import { clientSuite } from './client-suite.js';
import { startInProcessSynod } from './targets.js';

clientSuite('Synod (in process)', startInProcessSynod);
