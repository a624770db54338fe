import { describe, expect, it } from 'vitest';
import { parseRssBytes } from './rss-sampler.js';

describe('parseRssBytes', () => {
  it.each([
    ['# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 145698816\n', 145698816],
    ['process_resident_memory_bytes{service="inference"} 1.5e8\n', 150_000_000],
    ['process_resident_memory_bytes_total 5\nnodejs_heap_size_total_bytes 1\n', null],
    ['process_resident_memory_bytes NaN\n', null],
    ['', null],
  ])('%j → %s', (text, bytes) => {
    expect(parseRssBytes(text)).toBe(bytes);
  });
});
