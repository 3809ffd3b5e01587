export { HttpProtocol } from './http-protocol';
export type { HttpBodySource } from './body-writer';
export type { HttpAnswer, HttpExchange, HttpProtocolOptions, HttpResponder } from './http-protocol';
export { HeadError } from './request-head';
