/**
 * The part of the WebGPU API (https://www.w3.org/TR/webgpu/) the TypeScript host uses, typed
 * here because this package's TypeScript has no WebGPU declarations (lib.dom of TypeScript 5.9
 * has none, and @webgpu/types is not a dependency). Module-scoped, so they cannot clash with a
 * page's own global declarations; a real `navigator.gpu` fits these structurally.
 */

/** GPUBufferUsage flags (the spec's constants). */
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  INDIRECT: 0x0100,
} as const;
export const MAP_MODE_READ = 0x0001;
export const SHADER_STAGE_COMPUTE = 0x4;

export interface GPU {
  requestAdapter(options?: { powerPreference?: "low-power" | "high-performance" }): Promise<GPUAdapter | null>;
}

export interface GPUAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
}

/** The limits sead reads or asks for (GPUSupportedLimits has more). */
export interface GPUSupportedLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly minUniformBufferOffsetAlignment: number;
}

export interface GPUAdapter {
  readonly limits: GPUSupportedLimits;
  /** Absent in browsers older than 2024 (they had requestAdapterInfo()). */
  readonly info?: GPUAdapterInfo;
  requestDevice(descriptor?: { label?: string; requiredLimits?: Record<string, number> }): Promise<GPUDevice>;
}

export interface GPUErrorLike {
  readonly message: string;
}

export interface GPUDevice {
  readonly limits: GPUSupportedLimits;
  readonly queue: GPUQueue;
  readonly lost: Promise<{ readonly reason: string; readonly message: string }>;
  createBuffer(descriptor: { label?: string; size: number; usage: number; mappedAtCreation?: boolean }): GPUBuffer;
  createShaderModule(descriptor: { label?: string; code: string }): GPUShaderModule;
  createBindGroupLayout(descriptor: { label?: string; entries: GPUBindGroupLayoutEntry[] }): GPUBindGroupLayout;
  createPipelineLayout(descriptor: { label?: string; bindGroupLayouts: GPUBindGroupLayout[] }): GPUPipelineLayout;
  createComputePipeline(descriptor: GPUComputePipelineDescriptor): GPUComputePipeline;
  createComputePipelineAsync(descriptor: GPUComputePipelineDescriptor): Promise<GPUComputePipeline>;
  createBindGroup(descriptor: { label?: string; layout: GPUBindGroupLayout; entries: GPUBindGroupEntry[] }): GPUBindGroup;
  createCommandEncoder(descriptor?: { label?: string }): GPUCommandEncoder;
  pushErrorScope(filter: "validation" | "out-of-memory" | "internal"): void;
  popErrorScope(): Promise<GPUErrorLike | null>;
  addEventListener(type: "uncapturederror", listener: (event: { readonly error: GPUErrorLike }) => void): void;
  destroy(): void;
}

export interface GPUBindGroupLayoutEntry {
  binding: number;
  visibility: number;
  buffer: { type: "uniform" | "storage" | "read-only-storage"; hasDynamicOffset?: boolean };
}

export interface GPUBindGroupEntry {
  binding: number;
  resource: { buffer: GPUBuffer; offset?: number; size?: number };
}

export interface GPUComputePipelineDescriptor {
  label?: string;
  layout: GPUPipelineLayout;
  compute: { module: GPUShaderModule; entryPoint: string; constants?: Record<string, number> };
}

export interface GPUBuffer {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GPUQueue {
  writeBuffer(buffer: GPUBuffer, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void;
  submit(buffers: GPUCommandBuffer[]): void;
  onSubmittedWorkDone(): Promise<void>;
}

export interface GPUCommandEncoder {
  beginComputePass(descriptor?: { label?: string }): GPUComputePassEncoder;
  copyBufferToBuffer(source: GPUBuffer, sourceOffset: number, destination: GPUBuffer, destinationOffset: number, size: number): void;
  clearBuffer(buffer: GPUBuffer, offset?: number, size?: number): void;
  finish(): GPUCommandBuffer;
}

export interface GPUComputePassEncoder {
  setPipeline(pipeline: GPUComputePipeline): void;
  setBindGroup(index: number, group: GPUBindGroup, dynamicOffsets?: number[]): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  dispatchWorkgroupsIndirect(buffer: GPUBuffer, offset: number): void;
  end(): void;
}

export interface GPUShaderModule {
  getCompilationInfo(): Promise<{ readonly messages: readonly { type: string; message: string; lineNum: number; linePos: number }[] }>;
}

// Opaque handles.
export interface GPUBindGroupLayout {
  readonly label: string;
}
export interface GPUPipelineLayout {
  readonly label: string;
}
export interface GPUComputePipeline {
  readonly label: string;
}
export interface GPUBindGroup {
  readonly label: string;
}
export interface GPUCommandBuffer {
  readonly label: string;
}
