// Burns CPU in two named functions while the real Node.js Pyroscope agent
// (@pyroscope/nodejs) pushes to gocost. Arguments: server URL, app name, seconds, token, tenant.
const Pyroscope = require('@pyroscope/nodejs');

const [url, app, secs, token, tenant] = process.argv.slice(2);
Pyroscope.init({
  serverAddress: url,
  appName: app,
  authToken: token,
  tenantID: tenant,
  tags: { env: 'test', team: 'node' },
  flushIntervalMs: 4000,
});
Pyroscope.start();

function gocostNodeBusyLeaf(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x += Math.sqrt(i);
  return x;
}

function gocostNodeBusyOuter() {
  const kept = [];
  for (let i = 0; i < 50; i++) kept.push(new Array(1000).fill(i));
  return gocostNodeBusyLeaf(2e6) + kept.length;
}

const end = Date.now() + Number(secs) * 1000;
function tick() {
  if (Date.now() < end) {
    gocostNodeBusyOuter();
    setImmediate(tick);
  } else {
    Pyroscope.stop().then(() => process.exit(0));
  }
}
tick();
