// A uWebSockets server for bench/uws_compare.sh (issue 18): the other side of the side-by-side.
// uWebSockets.js (uWS's C++ core with Node bindings, from npm at bench time, never vendored)
// serving what parley-load speaks against parleyd:
//   /echo  every message back, same opcode (e2e's echo and connect rows)
//   /chat  the hello / join / msg / ack subset of docs/protocol.md: hello -> welcome, join ->
//          subscribe + an empty history, msg -> the room's next seq, the msg to every other
//          member (uWS's topic publish, which skips the sender, as parley does) and an ack
// Written as a uWS user would: JSON.parse on input, ws.publish for the fan-out; uWS corks the
// sends of one handler into one write. Its JS runs once per message received, not per
// delivery, so fan-out figures compare the two servers' C/C++ delivery paths; the echo rows
// include one JS callback per message (a cost a C++ uWS server would not pay).
//
// usage: UWS_MODULE=/path/to/uws-pack/dist/index.mjs node bench/compare/uws_chat.mjs PORT
//        (bench/uws_compare.sh installs it and sets that; prints "listening PORT" once it is)
const uws = await import(process.env.UWS_MODULE ?? 'uws-pack');  // named exports: App, ...

const port = Number(process.argv[2] ?? 9001);
const decoder = new TextDecoder();
const seqs = new Map();  // room -> last seq given

function onChat(ws, message) {
  let request;
  try {
    request = JSON.parse(decoder.decode(message));
  } catch {
    ws.send('{"type":"error","code":"bad_message","message":"not JSON"}');
    return;
  }
  const data = ws.getUserData();
  switch (request.type) {
    case 'hello':
      data.name = String(request.name ?? '');
      ws.send(JSON.stringify({ type: 'welcome', name: data.name }));
      return;
    case 'join':
      ws.subscribe(request.room);
      ws.send(JSON.stringify({ type: 'history', room: request.room, messages: [] }));
      return;
    case 'msg': {
      if (data.name === undefined || !ws.isSubscribed(request.room)) {
        ws.send('{"type":"error","code":"unknown_room","message":"not in that room"}');
        return;
      }
      const seq = (seqs.get(request.room) ?? 0) + 1;
      seqs.set(request.room, seq);
      ws.publish(request.room, JSON.stringify({ type: 'msg', room: request.room, from: data.name, text: request.text,
                                                ts: Date.now(), seq }));
      const ack = { type: 'ack', room: request.room, seq };
      if (request.id !== undefined) ack.id = request.id;
      ws.send(JSON.stringify(ack));
      return;
    }
    default:
      ws.send('{"type":"error","code":"bad_message","message":"unknown type"}');
  }
}

const limits = { maxPayloadLength: 16 * 1024 * 1024, idleTimeout: 0, maxBackpressure: 64 * 1024 * 1024 };
uws.App()
  .ws('/echo', { ...limits, message: (ws, message, isBinary) => ws.send(message, isBinary) })
  .ws('/chat', { ...limits, message: onChat })
  .listen('127.0.0.1', port, (socket) => {
    if (!socket) {
      console.error(`uws_chat: cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`listening ${port}`);
  });
