import { defineConfig } from 'vitest/config';

// Every gateway a test starts (in process, or dist/server.js as a child, which inherits this) checks each answer
// against its route's schema and the compiled serializer's bytes against zod's (openapi.checkAnswers).
const env = { QGA_GATEWAY_CHECK_ANSWERS: '1' };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          env,
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 15_000,
        },
      },
      {
        test: {
          name: 'e2e',
          env,
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          // One libvirtd and two TCG guests on two cores: files run one after another.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'agent-socket',
          env,
          include: ['test/agent-socket/**/*.test.ts'],
          // A real qemu-ga on the host (test/support/host-qga.ts), restarted when a test makes it exit: one file at a time.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'browser',
          env,
          include: ['test/browser/**/*.test.ts'],
          // Debian's chromium, driven headless by puppeteer-core (test/browser/support/browser.ts); the first run may
          // install it (scripts/chromium.sh, about a minute), and the real guests' file waits for a reboot.
          testTimeout: 90_000,
          hookTimeout: 600_000,
          // One browser at a time on two cores, and the real guests' file reboots guest-power: one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'container',
          env,
          include: ['test/container/**/*.test.ts'],
          testTimeout: 90_000,
          // beforeAll builds the base images and the gateway image: about 3 minutes when nothing is cached.
          hookTimeout: 900_000,
          // One podman storage, one libvirtd and the real guests: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
