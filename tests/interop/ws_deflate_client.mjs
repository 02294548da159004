// permessage-deflate interop: Node's `ws` client (which offers permessage-deflate by default)
// against parleyd's /echo. Usage: node ws_deflate_client.mjs PORT. Prints one line starting with
// "OK " and exits 0 when every echo matched, the extension was negotiated and the server really
// sent compressed messages; otherwise prints "FAIL ..." and exits 1.
import WebSocket from 'ws';

const port = process.argv[2];
const fail = (why) => {
  console.log(`FAIL ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 30000).unref();

// Compress everything we send (ws's default threshold is 1 KiB), so small messages are covered.
const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: { threshold: 0 } });
const sizes = [0, 10, 100, 1000, 20000, 200000];
const messages = [];
for (const size of sizes) {
  messages.push({ binary: false, data: 'parley says hello. '.repeat(Math.ceil(size / 19) + 1).slice(0, size) });
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; ++i) bytes[i] = ((i % 37) * 7) & 0xff;  // compressible
  messages.push({ binary: true, data: bytes });
}
let next = 0;
let compressedIn = 0;

ws.on('open', () => {
  const extensions = ws.extensions;
  if (!extensions.includes('permessage-deflate')) fail(`extension not negotiated: '${extensions}'`);
  // Count compressed messages from the server: ws inflates them through this method.
  const pmd = ws._extensions['permessage-deflate'];
  const decompress = pmd.decompress.bind(pmd);
  pmd.decompress = (data, fin, callback) => {
    if (fin) ++compressedIn;
    decompress(data, fin, callback);
  };
  ws.send(messages[0].data, { binary: messages[0].binary });
});

ws.on('message', (data, isBinary) => {
  const want = messages[next];
  const got = isBinary ? data : data.toString();
  const same = isBinary ? Buffer.compare(got, want.data) === 0 : got === want.data;
  if (isBinary !== want.binary || !same) fail(`echo ${next} differs (size ${want.data.length})`);
  if (++next < messages.length) {
    ws.send(messages[next].data, { binary: messages[next].binary });
    return;
  }
  // Everything of 64 bytes or more is compressible here, so parleyd must have compressed it.
  const expected = messages.filter((m) => m.data.length >= 64).length;
  if (compressedIn < expected) fail(`only ${compressedIn} of ${expected} echoes came compressed`);
  console.log(`OK ${messages.length} echoes, ${compressedIn} compressed, extensions: ${ws.extensions}`);
  ws.close(1000);
});

ws.on('close', (code) => {
  if (next < messages.length) fail(`closed early with ${code}`);
  process.exit(0);
});
ws.on('error', (err) => fail(err.message));
