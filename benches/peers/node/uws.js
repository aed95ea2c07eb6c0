'use strict';
// Load the native uWebSockets.js addon shipped in @trufflesuite/uws-js-unofficial directly.
// The package's own entry point silently falls back to a pure-JS implementation built on `ws`
// when the addon does not load (and prints to stdout when UWS_USE_FALLBACK is set); a benchmark
// must never measure that by accident, so this fails loudly instead.

const path = require('path');

const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const file = path.join(
  pkgDir,
  'binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
);

try {
  module.exports = require(file);
} catch (err) {
  console.error(`cannot load the native uWebSockets.js addon ${file}: ${err.message}`);
  process.exit(1);
}
