import{a,b,c}from"./chunk-RH7AY3XH.js";import"./chunk-INF7BMNL.js";import"./chunk-L5PQRFSM.js";export{a as POLL_MS,c as default,b as lastEvent};
