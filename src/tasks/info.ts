/** The stored form of a task: its family name and options, checked further by the registry. */
import { z } from "zod";
import type { TaskInfo } from "./types.js";

export const taskInfoSchema: z.ZodType<TaskInfo> = z.looseObject({ name: z.string().min(1) });
