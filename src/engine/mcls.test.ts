import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { insertMcls, validateMcls } from './mcls.ts';

describe('insertMcls', () => {
  it('puts a CLS before every k content tokens and keeps the template', () => {
    const seq = Int32Array.from([0, 10, 11, 12, 13, 14, 2]);
    expect([...insertMcls(seq, 2, 100).ids]).toEqual([0, 10, 11, 0, 12, 13, 0, 14, 2]);
    expect([...insertMcls(seq, 5, 100).ids]).toEqual([0, 10, 11, 12, 13, 14, 2]);
    expect(insertMcls(seq, 2, 100).cut).toBe(false);
  });

  it('cuts content so the sequence with its extra CLS tokens fits the maximum', () => {
    const seq = Int32Array.from([0, 10, 11, 12, 13, 14, 2]);
    const r = insertMcls(seq, 2, 6);
    expect([...r.ids]).toEqual([0, 10, 11, 0, 12, 2]);
    expect(r.cut).toBe(true);
    expect([...insertMcls(Int32Array.from([0, 2]), 4, 10).ids]).toEqual([0, 2]);
  });

  it('validates the interval', () => {
    expect(validateMcls(undefined, 512)).toBeUndefined();
    expect(validateMcls(256, 512)).toBe(256);
    expect(validateMcls(512, 512)).toBe(512);
    expect(() => validateMcls(0, 512)).toThrow(InvalidInputError);
    expect(() => validateMcls(2.5, 512)).toThrow(/an integer in 1\.\.512/);
    // Bounded by the model's maximum tokens: a larger interval can insert nothing.
    expect(() => validateMcls(1e9, 512)).toThrow(/option "mcls" must be the CLS interval in tokens; expected an integer in 1\.\.512/);
  });
});
