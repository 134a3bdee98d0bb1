import{a,b,c}from"./chunk-Y2BFXP5D.js";import"./chunk-WC4NWUHF.js";import"./chunk-L5PQRFSM.js";export{a as POLL_MS,c as default,b as lastEvent};
