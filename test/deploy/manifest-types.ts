/**
 * A strict check of Kubernetes objects: kubernetes-models' JSON-schema validation ignores fields
 * it does not know (a misspelt `readinesProbe` passes), so each object is also type-checked by
 * the TypeScript compiler as an object literal of the model's API type — excess property checks
 * then reject any unknown field, at any depth, and wrong types too. The source is in memory only.
 */
import path from 'node:path';
import ts from 'typescript';

/** apiVersion/kind → [module, interface] in kubernetes-models */
const TYPES: Record<string, readonly [string, string]> = {
  'v1/Namespace': ['kubernetes-models/v1/Namespace', 'INamespace'],
  'v1/ServiceAccount': ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1/Secret': ['kubernetes-models/v1/Secret', 'ISecret'],
  'rbac.authorization.k8s.io/v1/ClusterRole': ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole', 'IClusterRole'],
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding', 'IClusterRoleBinding'],
  'apps/v1/DaemonSet': ['kubernetes-models/apps/v1/DaemonSet', 'IDaemonSet'],
};

/** Type errors of the objects against their API types, as "object i (Kind name): message". */
export function typeErrors(objs: ReadonlyArray<Record<string, any>>, root: string): string[] {
  const file = path.join(root, 'test/deploy/__manifest-objects__.ts');
  const used = new Set<string>();
  const decls = objs.map((o, i) => {
    const t = TYPES[`${o.apiVersion}/${o.kind}`];
    if (!t) return `const o${i}: never = ${JSON.stringify(o)};`;
    used.add(`${t[1]}|${t[0]}`);
    return `// ${o.kind} ${o.metadata?.name}\nexport const o${i}: ${t[1]} = ${JSON.stringify(o, null, 1)};`;
  });
  const imports = [...used].map((u) => {
    const [name, mod] = u.split('|') as [string, string];
    return `import type { ${name} } from '${mod}';`;
  });
  const source = [...imports, ...decls].join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const line = d.start !== undefined ? sf.getLineAndCharacterOfPosition(d.start).line : -1;
    const owner = source.split('\n').slice(0, line + 1).reverse().find((l) => l.startsWith('// ')) ?? '';
    return `${owner.slice(3)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}
