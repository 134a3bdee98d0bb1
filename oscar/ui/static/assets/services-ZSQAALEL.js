import{a,b}from"./chunk-O42RLXA6.js";import"./chunk-L5PQRFSM.js";export{a as backendOf,b as default};
