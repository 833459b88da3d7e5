export * from './diagnose.js';
export * from './providers.js';
export * from './select.js';
export * from './system.js';
export * from './tensorrt.js';
export * from './cuda-libraries.js';
