export { HttpProtocol } from './http-protocol';
export type { HttpAnswer, HttpExchange, HttpProtocolOptions, HttpResponder } from './http-protocol';
export { HeadError } from './request-head';
