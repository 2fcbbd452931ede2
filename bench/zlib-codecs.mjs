// zlib per 4 KiB page inside a worker: fflate's zlibSync against the platform's
// CompressionStream('deflate') (which is zlib-wrapped deflate). One worker each, the same pages:
// half compressible (a repeated pattern with noise, what `stress mode=pattern` writes), half
// random. Reports MB/s of page input, compressed and inflated, and the compressed size.
import { readFileSync } from 'node:fs';

const fflateUmd = readFileSync(new URL('../node_modules/fflate/umd/index.js', import.meta.url), 'utf8');

function workerBody(pages, level) {
  const PAGE = 4096;
  const make = (kind, i) => {
    const p = new Uint8Array(PAGE);
    if (kind === 'random') crypto.getRandomValues(p);
    else for (let k = 0; k < PAGE; k++) p[k] = (k * 7 + (k >> 6) + i) & 0x3f;
    return p;
  };
  const run = async () => {
    const out = {};
    for (const kind of ['pattern', 'random']) {
      const src = Array.from({ length: pages }, (_, i) => make(kind, i));
      // fflate (after a warm-up, so the JIT has compiled it)
      for (const p of src.slice(0, 256)) self.fflate.unzlibSync(self.fflate.zlibSync(p, { level, mem: 4 }));
      let t = performance.now();
      let size = 0;
      const zs = [];
      for (const p of src) { const z = self.fflate.zlibSync(p, { level, mem: 4 }); size += z.length; zs.push(z); }
      const fEnc = performance.now() - t;
      t = performance.now();
      for (const z of zs) self.fflate.unzlibSync(z);
      const fDec = performance.now() - t;
      out[`fflate_${kind}`] = { enc_mb_s: (pages * PAGE) / 1e3 / fEnc, dec_mb_s: (pages * PAGE) / 1e3 / fDec, ratio: size / (pages * PAGE) };
      // CompressionStream, one stream per page (a page is a record of its own)
      const cs = async (p) => new Uint8Array(await new Response(new Blob([p]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
      const ds = async (z) => new Uint8Array(await new Response(new Blob([z]).stream().pipeThrough(new DecompressionStream('deflate'))).arrayBuffer());
      t = performance.now();
      size = 0;
      const cz = [];
      for (const p of src) { const z = await cs(p); size += z.length; cz.push(z); }
      const cEnc = performance.now() - t;
      t = performance.now();
      for (const z of cz) await ds(z);
      const cDec = performance.now() - t;
      out[`cstream_${kind}`] = { enc_mb_s: (pages * PAGE) / 1e3 / cEnc, dec_mb_s: (pages * PAGE) / 1e3 / cDec, ratio: size / (pages * PAGE) };
      // CompressionStream with 64 pages in flight at once (its best case: concurrency)
      t = performance.now();
      for (let i = 0; i < src.length; i += 64) await Promise.all(src.slice(i, i + 64).map(cs));
      out[`cstream64_${kind}`] = { enc_mb_s: (pages * PAGE) / 1e3 / (performance.now() - t) };
    }
    return out;
  };
  run().then((r) => postMessage(r), (e) => postMessage({ error: String(e) }));
}

/** Runs in a page of `browser`; returns figures. */
export async function zlibCodecs(browser, pages = 4096, level = 1) {
  const page = await browser.openPage('');
  const res = await page.evaluate(
    ({ lib, body, pages, level }) =>
      new Promise((resolve) => {
        const src = `${lib}\n;(${body})(${pages}, ${level});`;
        const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
        w.onmessage = (e) => { resolve(e.data); w.terminate(); };
      }),
    { lib: fflateUmd, body: workerBody.toString(), pages, level },
  );
  await page.close();
  return res;
}
