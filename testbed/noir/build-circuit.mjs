// Compiles one Noir circuit and solves its witness with the pinned npm Noir packages,
// writing the two files bb reads: program.json (-b) and witness.gz (-w).
// usage: node build-circuit.mjs CIRCUIT_DIR   (reads CIRCUIT_DIR/inputs.json)
import { compile, createFileManager } from '@noir-lang/noir_wasm';
import { Noir } from '@noir-lang/noir_js';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';

// These fields embed the absolute source path of the machine that compiled the
// circuit; bb needs neither, and committing them would leak that path.
const PATH_DEPENDENT_FIELDS = ['file_map', 'debug_symbols'];

const dir = resolve(process.argv[2] ?? '');
if (!process.argv[2]) {
  console.error('usage: node build-circuit.mjs CIRCUIT_DIR');
  process.exit(2);
}
const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));

// noir_wasm resolves the project through a file manager rooted at an absolute path.
const { program } = await compile(createFileManager(dir));
for (const field of PATH_DEPENDENT_FIELDS) delete program[field];

const { witness } = await new Noir(program).execute(inputs);

writeFileSync(join(dir, 'program.json'), JSON.stringify(program));
writeFileSync(join(dir, 'witness.gz'), witness); // already a gzipped msgpack WitnessStack
console.error(`built ${dir}/program.json and witness.gz`);
