export {
  decide,
  type Route,
  type RouteInput,
  type RouteProtocol,
  type RouteReason,
} from './decide.js';
