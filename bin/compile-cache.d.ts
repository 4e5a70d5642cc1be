// Types of compile-cache.js, for the TypeScript that imports it (the bench's child processes).
export declare const COMPILE_CACHE_DIR: string;
export declare function enableCompileCache(): string | null;
