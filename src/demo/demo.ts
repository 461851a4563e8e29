export async function runDemo(_args: readonly string[]): Promise<number> { return 0; }
