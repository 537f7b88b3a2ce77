// Validates an OpenAPI document with swagger-parser (schema and spec
// checks, $refs resolved), as a TypeScript team adopting Onceflow would.
import SwaggerParser from "@apidevtools/swagger-parser";

const path = process.argv[2];
try {
  const api = await SwaggerParser.validate(path);
  console.log(`swagger-parser: ${path} is valid (${api.info.title} ${api.info.version})`);
} catch (err) {
  console.error(`swagger-parser: ${path}: ${err.message}`);
  process.exit(1);
}
