// Field schemas the configuration's sections share.
import { z } from 'zod';

/** Milliseconds, at least 1. */
export const ms = (max: number) => z.number().int().min(1).max(max);

/** C0 and C1 control characters: never in a name that reaches logs, audit lines or answers. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A name of 1 to `max` characters with no control character. */
export const noControl = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !CONTROL.test(s), 'must not contain control characters');

/** Host names appear in qualified domain ids (host:name), so no ':' or '/'. */
export const hostNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be 1-63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit');
