// Validates an AsyncAPI document with AsyncAPI's own parser (its JSON Schema for the version,
// its rules): prints each diagnostic, exits 1 if any is an error.
//   node contract_tests/validate_asyncapi.mjs asyncapi/events.yaml
import { Parser, fromFile } from '@asyncapi/parser';

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const severities = ['error', 'warning', 'information', 'hint'];
for (const d of diagnostics) {
  console.log(`${severities[d.severity]} ${d.code} at ${d.path.join('.')}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.log(`${path}: INVALID (${errors.length} errors)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
  `${document.operations().length} operations, ${document.messages().length} messages`);
