// simple-peer's prebuilt UMD bundle (see webrtc.ts for why this entry and not 'simple-peer').
// Under Vite the bundle is turned into a module with a default export; served as-is (the test
// runner) it exports nothing and sets globalThis.SimplePeer instead.
declare module 'simple-peer/simplepeer.min.js' {
  import SimplePeer from 'simple-peer';
  export default SimplePeer;
}
