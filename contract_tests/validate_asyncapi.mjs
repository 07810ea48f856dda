// Validates AsyncAPI documents with AsyncAPI's own parser (its JSON Schema for the version, its
// rules): prints each diagnostic and a verdict per document, exits 1 if any has an error.
//   node contract_tests/validate_asyncapi.mjs asyncapi/events.yaml [more.yaml ...]
import { Parser, fromFile } from '@asyncapi/parser';

const parser = new Parser();
const severities = ['error', 'warning', 'information', 'hint'];
let invalid = 0;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await fromFile(parser, path).parse();
  for (const d of diagnostics) {
    console.log(`${path}: ${severities[d.severity]} ${d.code} at ${d.path.join('.')}: ${d.message}`);
  }
  const errors = diagnostics.filter((d) => d.severity === 0);
  if (!document || errors.length) {
    console.log(`${path}: INVALID (${errors.length} errors)`);
    invalid += 1;
  } else {
    console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.channels().length} ` +
      `channels, ${document.operations().length} operations, ${document.messages().length} messages`);
  }
}
process.exit(invalid ? 1 : 0);
