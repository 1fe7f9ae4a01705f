// Integration tests start real processes: give hooks and tests time.
jest.setTimeout(120_000);
