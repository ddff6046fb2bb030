// Drives a bb (the real one or the shim) through the real @aztec/bb.js 5.0.0 client,
// as the Aztec 5.x prover does: Barretenberg.new({backend: NativeUnixSocket, bbPath}).
// Prints what came back as JSON on stdout (byte values as hex), for the Rust tests to
// compare between bb and the shim.
//
// usage: node bbjs_client.mjs <bbjs install dir> <bbPath> <scenario> [args...]
//   light                         poseidon2Hash, blake2s, an ErrorResponse
//   pipeline                      64 poseidon2Hash calls in flight at once on one socket
//   prove <bytecode> <witness> <vk|novk>
//                                 [circuitComputeVk +] circuitProve, non-ZK
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bbjsDir, bbPath, scenario, ...args] = process.argv.slice(2);
const entry = `${bbjsDir}/node_modules/@aztec/bb.js/dest/node/index.js`;
const { Barretenberg, BackendType } = await import(pathToFileURL(entry).href);

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const fr = (n) => {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(28, n);
  return b;
};

const api = await Barretenberg.new({ backend: BackendType.NativeUnixSocket, bbPath, logger: () => {} });
const out = {};
try {
  if (scenario === 'light') {
    out.poseidon2 = hex((await api.poseidon2Hash({ inputs: [fr(1), fr(2)] })).hash);
    out.blake2s = hex((await api.blake2s({ data: Buffer.from('abc') })).hash);
    try {
      await api.chonkProve({});
      out.error = null;
    } catch (e) {
      out.error = e.message;
    }
  } else if (scenario === 'pipeline') {
    const calls = Array.from({ length: 64 }, (_, i) => api.poseidon2Hash({ inputs: [fr(i), fr(i + 1)] }));
    out.hashes = (await Promise.all(calls)).map((r) => hex(r.hash));
  } else if (scenario === 'prove') {
    const bytecode = readFileSync(args[0]);
    const witness = readFileSync(args[1]);
    const settings = {
      ipaAccumulation: false,
      oracleHashType: 'poseidon2',
      disableZk: true,
      optimizedSolidityVerifier: false,
    };
    let vk = new Uint8Array();
    if (args[2] === 'vk') {
      vk = (await api.circuitComputeVk({ circuit: { name: 'c', bytecode }, settings })).bytes;
      out.vk = hex(vk);
    }
    const r = await api.circuitProve({ circuit: { name: 'c', bytecode, verificationKey: vk }, witness, settings });
    out.proof = r.proof.map(hex);
    out.publicInputs = r.publicInputs.map(hex);
    out.provedVk = hex(r.vk.bytes);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} finally {
  await api.destroy();
}
process.stdout.write(JSON.stringify(out));
