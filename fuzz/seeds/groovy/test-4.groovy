
echo "${env.BRANCH_NAME} $BRANCH_NAME ${env.NOPE}"
env.VERSION = "1.${currentBuild.number}"
echo env.VERSION
echo "${params.DEPLOY} ${params.TARGET} ${params.DEPLOY == true}"
echo "${currentBuild.result} ${currentBuild.currentResult} ${currentBuild.previousBuild?.result}"
currentBuild.result = 'UNSTABLE'
echo currentBuild.result
