// WGSL files imported as text (esbuild's `loader: { ".wgsl": "text" }`).
declare module "*.wgsl" {
  const text: string;
  export default text;
}
