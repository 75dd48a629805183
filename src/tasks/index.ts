/**
 * The tasks: the registry (registry.ts) and the built-in task families, one file each,
 * registered here in the order their short names are tried.
 */
import { additionDefinition } from "./addition.js";
import { elementaryDefinition } from "./elementary.js";
import { multiplicationDefinition } from "./multiplication.js";
import { parityDefinition } from "./parity.js";
import { registerTask } from "./registry.js";

export * from "./types.js";
export * from "./registry.js";
export * from "./addition.js";
export * from "./elementary.js";
export * from "./multiplication.js";
export * from "./parity.js";

registerTask(parityDefinition);
registerTask(additionDefinition);
registerTask(elementaryDefinition);
registerTask(multiplicationDefinition);

/** The schema of a stored task: { name, ...options }; the options are checked by the task's definition when it is built. */
export { taskInfoSchema } from "./info.js";
