// Lint: ESLint's and typescript-eslint's recommended rules (syntax-aware only, no type information: it stays fast
// on this tree). Formatting is prettier's job (.prettierrc.json), so no stylistic rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config({ ignores: ['dist/', 'lib/', 'dev-dist/', 'node_modules/', 'fixtures/', 'test-results/', 'playwright-report/', 'training/', '**/*.py'] }, js.configs.recommended, ...tseslint.configs.recommended, {
  languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
  rules: {
    // Globals (window, self, GPUBufferUsage, process, …) are TypeScript's business: tsc checks them with the real lib types.
    'no-undef': 'off',
    // `_name` marks a parameter kept for a signature (an interface method, a callback's position).
    // `a && f()` / `c ? f() : g()` as statements are the house style; a bare value or comma sequence still fails.
    '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
    '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
  },
});
