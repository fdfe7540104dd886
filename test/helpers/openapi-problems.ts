/** The parts of an OpenAPI 3 operation the completeness check reads. */
export interface Operation {
  summary?: string;
  description?: string;
  parameters?: Array<{ name: string; in: string; description?: string }>;
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, { description?: string }> } }> };
  responses: Record<string, { description?: string }>;
  security?: unknown[];
}
export type OpenApi = { paths: Record<string, Record<string, Operation>> };

/**
 * What the API reference lacks, one line per gap: every operation needs a summary and a
 * description, every path, query and header field and every top-level body field a description,
 * and every /v1 route its 401 AUTH and 500 INTERNAL answers and a security requirement.
 */
export function openapiProblems(doc: OpenApi): string[] {
  const problems: string[] = [];
  for (const [path, byMethod] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(byMethod)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.summary?.trim()) problems.push(`${where}: no summary`);
      if (!op.description?.trim()) problems.push(`${where}: no description`);
      for (const p of op.parameters ?? []) if (!p.description?.trim()) problems.push(`${where}: ${p.in} field '${p.name}' has no description`);
      for (const media of Object.values(op.requestBody?.content ?? {})) {
        for (const [name, prop] of Object.entries(media.schema.properties ?? {})) {
          if (!prop.description?.trim()) problems.push(`${where}: body field '${name}' has no description`);
        }
      }
      if (path.startsWith("/v1/")) {
        if (!op.responses["401"]?.description?.includes("AUTH")) problems.push(`${where}: 401 AUTH not documented`);
        if (!op.responses["500"]?.description?.includes("INTERNAL")) problems.push(`${where}: 500 not documented`);
        if (!op.security?.length) problems.push(`${where}: no security requirement`);
      }
    }
  }
  return [...new Set(problems)];
}
