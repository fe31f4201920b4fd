// The layer map of ../ARCHITECTURE: dependencies point down, never up or sideways. Each rule names a
// layer and the layers it must not import. `sim` and `check` are test infrastructure that production
// layers never import.
const layers = ['base', 'raft', 'storage', 'kv', 'server', 'client', 'services', 'apps'];

function above(layer) {
  return layers.slice(layers.indexOf(layer) + 1);
}

const forbidden = [];
for (const layer of layers) {
  const banned = above(layer);
  if (layer !== 'apps') banned.push('sim');
  if (!['apps', 'server'].includes(layer)) banned.push('check');
  if (banned.length === 0) continue;
  forbidden.push({
    name: `${layer}-imports-only-below`,
    severity: 'error',
    comment: `src/${layer} may not depend on ${banned.join(', ')}.`,
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${banned.join('|')})/` },
  });
}
forbidden.push({
  name: 'check-is-independent',
  severity: 'error',
  comment: 'The linearizability checker depends on base only, so real-process tests can reuse it.',
  from: { path: '^src/check/' },
  to: { path: '^src/(?!base/|check/)[^/]+/' },
});
forbidden.push({
  name: 'sim-depends-on-cores-only',
  severity: 'error',
  comment: 'The simulator drives the pure cores; it never reaches the network or the disk.',
  from: { path: '^src/sim/' },
  to: { path: '^src/(server|client|services|apps)/' },
});
forbidden.push({
  name: 'no-circular',
  severity: 'error',
  comment:
    'No runtime import cycles. Type-only imports are erased at compile time, so a role handler may ' +
    'name the Raft type it is handed while raft.ts imports the handler.',
  from: {},
  to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
});

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
