// Checks that a file is a valid OpenAPI 3.1 description, against the
// official schema of the version it names (@seriousme/openapi-schema-validator),
// and that every $ref in it resolves.
//
// Usage: node openapi.mjs DESCRIPTION.json
// Prints "ok" and exits 0 when it is valid; prints the errors otherwise.
import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';

const [file] = process.argv.slice(2);
const description = JSON.parse(await readFile(file, 'utf8'));
const validator = new Validator();
const result = await validator.validate(description);
if (!result.valid) {
  console.log(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
if (validator.version !== '3.1') {
  console.log(`an OpenAPI ${validator.version} description, not 3.1`);
  process.exit(1);
}
// Throws on a $ref that points nowhere.
validator.resolveRefs();
console.log('ok');
